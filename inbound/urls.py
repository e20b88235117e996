from django.urls import path

from . import views

app_name = "inbound"

urlpatterns = [
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("confirm/<str:token>/resend/", views.resend, name="resend"),
    path("download/<str:token>/", views.download, name="download"),
]
