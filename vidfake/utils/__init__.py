"""Small helpers the subpackages share, importing nothing else of vidfake: settings
dataclasses from plain values (``config``), append-only JSON-lines record files
(``jsonl``) and giving freed heap back to the system (``memory``)."""
