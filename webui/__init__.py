"""The Gradio app's parts (app.py is the page and its events): deployment settings and the
Translator (runtime), what comes in from a visitor (inputs), the model picker (picker) and
video and full-size photos (media). Gradio-dependent, so not part of the img2img library."""
