// Swagger UI (served from this origin, no CDN) on the server's own OpenAPI document.
window.ui = SwaggerUIBundle({
  url: '/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // The token stays in the page's memory only: never in localStorage.
  persistAuthorization: false,
});
