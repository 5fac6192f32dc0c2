"""genyard: a self-hostable AI generation platform."""

__version__ = "0.1.0"
