from django.urls import path

from . import rights_views, tracking_views, views
from .nurture import views as nurture_views

app_name = "inbound"

urlpatterns = [
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("confirm/<str:token>/resend/", views.resend, name="resend"),
    path("download/<str:token>/", views.download, name="download"),
    path("u/<str:token>/", rights_views.unsubscribe, name="unsubscribe"),
    path("p/<str:token>/", rights_views.preferences, name="preferences"),
    path("p/<str:token>/export/", rights_views.preferences_export, name="preferences_export"),
    path("erase/<str:token>/", rights_views.erase, name="erase"),
    path("meine-daten/", rights_views.manage, name="manage"),
    path("cookies/", tracking_views.cookie_settings, name="cookie_settings"),
    path("c/<str:token>/", nurture_views.click, name="nurture_click"),
]
