"""The demo: ``preforkit examples.hello:handler``."""


def handler(request):
    return {
        "status": 200,
        "headers": {"Content-Type": "text/plain"},
        "body": "Hello, World!",
    }
