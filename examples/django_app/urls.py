from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from . import views

urlpatterns = [
    path("", views.index),
    path("json", csrf_exempt(views.echo_json)),
    path("form", csrf_exempt(views.form)),
    path("stream", views.stream),
    path("users/<int:user_id>", views.user),
    path("error", views.error),
    path("db/sleep", views.db_sleep),
    path("db/items/<int:item_id>", views.db_item),
]
