"""The admin, and nothing else, for the review site the browser test serves."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
