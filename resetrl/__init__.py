"""resetrl: RL post-training of language models with resets for credit assignment."""

__version__ = "0.1.0"
