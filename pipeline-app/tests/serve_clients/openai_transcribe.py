"""Drives the official OpenAI Python SDK's audio transcription call against a server.

Usage: openai_transcribe.py BASE_URL API_KEY FILE RESPONSE_FORMAT [FIELDS]

Calls client.audio.transcriptions.create(model="whisper-1", file=FILE,
response_format=RESPONSE_FORMAT, **FIELDS) with FIELDS a JSON object of further arguments
(language, temperature, prompt, ...). Prints one JSON object on stdout: {"result": ...,
"type": ...} (the text for text/srt/vtt, or the object the SDK parsed, as a dict, for
json/verbose_json; and the name of its type), or {"error": {"class": the SDK's exception
class, "status": the HTTP status, "message": its message}}.
"""

import json
import sys

import openai

base_url, api_key, path, response_format = sys.argv[1:5]
fields = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}

# No retries: each call is one request, and its answer is what the test checks.
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
try:
    with open(path, "rb") as file:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=file, response_format=response_format, **fields
        )
except openai.APIStatusError as error:
    outcome = {
        "error": {
            "class": type(error).__name__,
            "status": error.status_code,
            "message": error.message,
        }
    }
else:
    outcome = {
        "result": result if isinstance(result, str) else result.to_dict(),
        "type": type(result).__name__,
    }
print(json.dumps(outcome))
