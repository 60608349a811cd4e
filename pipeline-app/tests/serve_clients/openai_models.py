"""Drives the official OpenAI Python SDK's model listing against a server.

Usage: openai_models.py BASE_URL API_KEY

Prints one JSON object on stdout: {"result": [the ids of client.models.list()]}, or
{"error": {"class": the SDK's exception class, "status": the HTTP status, "message": ...}}.
"""

import json
import sys

import openai

base_url, api_key = sys.argv[1:3]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
try:
    outcome = {"result": [model.id for model in client.models.list()]}
except openai.APIStatusError as error:
    outcome = {
        "error": {
            "class": type(error).__name__,
            "status": error.status_code,
            "message": error.message,
        }
    }
print(json.dumps(outcome))
