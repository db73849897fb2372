"""The same backend with its GPU function in another module (models.py), which app.py names:
hfgate.space.run("server:app", gpu="models")."""

from models import generate
from routes import make_app

app = make_app(generate)
