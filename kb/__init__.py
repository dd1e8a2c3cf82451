"""Evidence KB: a research-literature knowledge base and evidence search service."""

__version__ = "0.1.0"
