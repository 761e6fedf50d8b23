"""The OpenVINO CPU backend: conversion and runner (`runner.py`), the on-disk cache of
converted graphs (`cache.py`)."""
