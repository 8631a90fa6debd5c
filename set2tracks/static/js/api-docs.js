// Starts Swagger UI on /api/docs. Lives in a file, not inline, so the CSP needs no
// 'unsafe-inline' and no nonce; the spec URL comes from the page's data-openapi-url.
(function () {
  "use strict";

  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }

  window.ui = window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
    plugins: [window.SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    // The default validator badge is an <img> from validator.swagger.io: img-src blocks
    // it, and it would hand our spec URL to a third party anyway.
    validatorUrl: null,
  });
})();
