/* Cookie banner (inbound plugin): sends the choice without reloading the page.
 *
 * Progressive enhancement only: without this script the banner is a plain form that POSTs to
 * the same endpoint and is redirected back. The script stores nothing on the device itself
 * (no web storage, no cookies from script) and talks to this site only.
 */
(function () {
  "use strict";

  function announce(message) {
    var status = document.getElementById("cookie-status");
    if (status) {
      status.textContent = message;
    }
  }

  function closeBanner(banner, message) {
    banner.hidden = true;
    announce(message);
    var main = document.getElementById("main");
    if (main) {
      if (!main.hasAttribute("tabindex")) {
        main.setAttribute("tabindex", "-1");
      }
      main.focus({ preventScroll: true });
    }
  }

  function enhance(form) {
    var banner = form.closest("[data-cookie-banner]");
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!banner || !window.fetch || !window.FormData || !submitter || form.dataset.plainPost) {
        return; /* the browser posts the form as usual */
      }
      event.preventDefault();
      var data = new FormData(form);
      data.append(submitter.name, submitter.value);
      /* getAttribute: the buttons are named "action", which shadows form.action */
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        closeBanner(banner, form.dataset.savedMessage || "");
      }).catch(function () {
        form.dataset.plainPost = "1"; /* fall back to the plain form post */
        if (form.requestSubmit) {
          form.requestSubmit(submitter);
        } else {
          submitter.click();
        }
      });
    });
  }

  var forms = document.querySelectorAll("form[data-cookie-form]");
  for (var i = 0; i < forms.length; i += 1) {
    enhance(forms[i]);
  }
}());
