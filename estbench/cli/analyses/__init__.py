"""Registered analyses: every module here is imported by ``analyze.mount`` and registers
its commands with ``@analysis``."""
