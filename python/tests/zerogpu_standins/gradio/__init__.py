"""Stand-in for gradio, for hfgate's tests: the spaces stand-in imports it, as the real spaces
imports gradio. hfgate's launcher must never launch it (gradio would bind the Space's port)."""


class Blocks:
    def launch(self, *args, **kwargs):
        raise RuntimeError("stand-in gradio: Blocks.launch() was called; hfgate's launcher must not launch gradio")
