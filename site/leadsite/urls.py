from django.conf import settings
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.contrib.sitemaps.views import sitemap
from wagtail.documents import urls as wagtaildocs_urls

from . import views

handler500 = "leadsite.views.server_error"

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    path("sitemap.xml", sitemap, name="sitemap"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("-/health/", views.health_check, name="health_check"),
    path("inbound/", include("inbound.urls")),
]

if settings.DEBUG:
    # Images only: documents are served through Wagtail's view, which protects gated assets.
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL + "images/", document_root=f"{settings.MEDIA_ROOT}/images")
    urlpatterns += static(
        settings.MEDIA_URL + "original_images/", document_root=f"{settings.MEDIA_ROOT}/original_images"
    )

urlpatterns += [path("", include(wagtail_urls))]
