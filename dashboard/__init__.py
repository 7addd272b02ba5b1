"""The nursing-station dashboard: FastAPI app (REST + websocket), auth, and the static live page."""
