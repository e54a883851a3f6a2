"""tfparity: do TensorFlow's hardware paths agree, and how fast is each?"""

__version__ = "0.1.0"
