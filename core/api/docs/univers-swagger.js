// Starts Swagger UI on the API's OpenAPI document (served from this package: no inline script,
// nothing from another site, so the page's Content-Security-Policy can be `script-src 'self'`).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.openapi,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
