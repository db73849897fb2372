"""The GPU function of server.py, declared through an alias."""

from spaces import GPU as gpu


@gpu(duration=10)
def generate(prompt):
    return prompt.upper()
