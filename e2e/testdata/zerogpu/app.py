"""A ZeroGPU backend for hfgate's tests: its @spaces.GPU function in the app's own module."""

import spaces

from routes import make_app


@spaces.GPU(duration=10)
def generate(prompt):
    return prompt.upper()


app = make_app(generate)
