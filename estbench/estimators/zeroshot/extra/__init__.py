"""The torch steps of the passes of the newer proxies (issue 15), one module per family,
named by their ``PassSpec.step`` in :mod:`..plan` and imported by the engine on first
use (never at registration: listing estimators stays torch-free)."""
