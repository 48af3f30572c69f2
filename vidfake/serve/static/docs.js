// The API documentation page: Swagger UI, whose files this server serves (nothing comes
// from a CDN). The schema and the "Try it out" calls carry the access token that the main
// page stored in this tab, when the server needs one.
(() => {
  "use strict";
  const TOKEN_KEY = "vidfake-token"; // the key app.js stores the token under
  const token = sessionStorage.getItem(TOKEN_KEY);
  const note = document.getElementById("docs-note");
  const say = (text) => {
    note.replaceChildren(text + " ");
    const back = document.createElement("a");
    back.href = "/";
    back.textContent = "Back to the main page.";
    note.append(back);
    note.hidden = false;
  };

  fetch("/openapi.json", { headers: token ? { Authorization: "Bearer " + token } : {} })
    .then(async (response) => {
      if (response.status === 401) {
        say("This server needs an access token: enter it on the main page, then open this page again.");
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      SwaggerUIBundle({
        spec: await response.json(),
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
        layout: "BaseLayout",
        deepLinking: true,
        requestInterceptor: (request) => {
          if (token && !request.headers.Authorization) request.headers.Authorization = "Bearer " + token;
          return request;
        },
      });
    })
    .catch((error) => say("The API description could not be loaded: " + error.message + "."));
})();
