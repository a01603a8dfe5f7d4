import json
import time

from django.db import connection
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


def db_sleep(request):
    """``SELECT pg_sleep(seconds)``: a slow query (needs ``DATABASE_URL``)."""
    seconds = float(request.GET.get("seconds", "1"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return JsonResponse({"slept": seconds})


def db_item(request, item_id):
    """One indexed query on ``preforkit_items`` (``benchmarks/django_pg_bench.py`` creates it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name FROM preforkit_items WHERE id = %s", [item_id])
        row = cursor.fetchone()
    if row is None:
        raise Http404("no such item")
    return JsonResponse({"id": row[0], "name": row[1]})
