"""TensorFlow-free analysis: results in, verdicts out.

:mod:`.samples` owns group identity and the values taken from a result; :mod:`.stats` and
:mod:`.equivalence` the statistics; :mod:`.checks` the verdict types; :mod:`.agreement`,
:mod:`.performance` and :mod:`.integrity` the checks; :mod:`.compare` plans which groups are
compared; :mod:`.regress`, :mod:`.claims`, :mod:`.summary` and :mod:`.history` the other views.
"""
