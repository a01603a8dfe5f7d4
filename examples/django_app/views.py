import json
import time

from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse


def index(request):
    return HttpResponse("Hello from Django on preforkit\n", content_type="text/plain")


def echo_json(request):
    return JsonResponse({"received": json.loads(request.body or b"null"), "method": request.method})


def form(request):
    upload = request.FILES.get("file")
    return JsonResponse(
        {
            "fields": {key: request.POST[key] for key in request.POST},
            "file": {"name": upload.name, "size": upload.size} if upload else None,
        }
    )


def stream(request):
    def generate():
        for i in range(3):
            yield f"line {i}\n"
            time.sleep(0.01)

    return StreamingHttpResponse(generate(), content_type="text/plain")


def user(request, user_id):
    if user_id > 100:
        raise Http404("no such user")
    return JsonResponse({"id": user_id})


def error(request):
    raise RuntimeError("a bug in the view")
