"""Rendering rows (terminal table / csv / json / markdown / latex) and reports."""
