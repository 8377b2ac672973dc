"""Analyses over the store: SQL for joins/grouping/ranking, numpy/scipy for the rest."""
