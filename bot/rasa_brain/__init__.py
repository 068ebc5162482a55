"""Optional second brain: a real Rasa Open Source 3.6 server trained from `nlu_data/`.

`export` turns `nlu_data/` into a Rasa project, `server` trains and runs it with the
Python 3.10 venv `.rasa-venv/`, and `client` talks to it over HTTP.
"""

from bot.rasa_brain.client import RasaClient, RasaUnavailable
from bot.rasa_brain.server import RasaServer, RasaServerError, find_python310

__all__ = ["RasaClient", "RasaServer", "RasaServerError", "RasaUnavailable", "find_python310"]
