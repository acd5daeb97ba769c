"""Pipelines and their sampling schedule (``scheduling``)."""
