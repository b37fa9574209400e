"""The convolution lab: its maths, written out step by step, and its figures."""
