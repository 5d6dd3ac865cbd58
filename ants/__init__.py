"""ANTS: zero-shot OOD detection with CLIP, negative labels and test-time MLLM negatives.

Every score in this package is "higher = more in-distribution".
"""

__version__ = "0.1.0"
