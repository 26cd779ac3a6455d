"""Data cards, one Markdown file per task (shipped as package data)."""
