"""Example tfparity benchmark plugins users can copy (README, "Your own benchmark")."""
