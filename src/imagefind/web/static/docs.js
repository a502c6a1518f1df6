// Starts Swagger UI on the API's OpenAPI document (a file of its own: the CSP allows no
// inline script).
"use strict";
window.addEventListener("load", () => {
  const root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
  });
});
