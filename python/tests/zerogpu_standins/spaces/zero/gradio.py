"""The hook into gradio (stand-in): the first Blocks.launch() runs startup() first."""

import gradio


def one_launch(task):
    launch = gradio.Blocks.launch

    def launch_once(self, *args, **kwargs):
        task()
        gradio.Blocks.launch = launch
        return launch(self, *args, **kwargs)

    gradio.Blocks.launch = launch_once
