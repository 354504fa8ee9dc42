"""A faasflow function: ``handle(event, context)`` gets the event and returns the result.

``event`` is the event's data: a dict (or list, number…) when it is JSON sent as JSON or with
no content type, a string otherwise ({"data_base64": …} for bytes that are not UTF-8).
``context`` has ``activation_id``, ``deadline`` (epoch ms), ``function_name``, ``env`` (this
call's CE_* and FAASFLOW_* variables) and ``remaining_ms()``. Return anything JSON can hold;
a string goes out as its text. Raising fails the invocation. What you print is its log.
"""

import os


def handle(event, context):
    name = event.get("name") if isinstance(event, dict) else event
    print(f"greeting {name!r} in {context.function_name}")
    return {"message": f"{os.environ.get('GREETING', 'Hello')}, {name or 'world'}!"}
