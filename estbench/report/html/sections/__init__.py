"""The report's sections, one module per topic; each registers with ``@section``."""
