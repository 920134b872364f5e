(function () {
  "use strict";
  var status = function (text) {
    var line = document.getElementById("login-status");
    if (line) { line.textContent = text; }
  };
  var b64url = function (buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  var sha256 = function (text) {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  };
  var random = function (n) { return b64url(crypto.getRandomValues(new Uint8Array(n))); };
  var again = " Nothing was decided; open the link from the email again.";
  var here = location.origin + location.pathname;
  var params = new URLSearchParams(location.search);

  if (params.has("code") || params.has("error")) {
    // Back from the identity provider: the state names the sign-in this tab started.
    var key = "rollback-login:" + (params.get("state") || "");
    var saved = JSON.parse(sessionStorage.getItem(key) || "null");
    sessionStorage.removeItem(key);
    if (params.has("error")) {
      status("The identity provider did not sign you in (" + params.get("error") + ")." + again);
      return;
    }
    if (!saved) {
      status("This sign-in was not started in this tab, or was used already." + again);
      return;
    }
    history.replaceState(null, "", here + "?t=" + encodeURIComponent(saved.link));
    status("Signed in; recording the decision\u2026");
    fetch(saved.token, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code: params.get("code"), redirect_uri: here,
        client_id: saved.client, code_verifier: saved.verifier
      })
    }).then(function (answer) {
      if (!answer.ok) { throw new Error("the identity provider answered " + answer.status); }
      return answer.json();
    }).then(function (tokens) {
      return fetch(here, {
        method: "POST",
        headers: {
          "Authorization": "Bearer " + tokens.id_token,
          "Content-Type": "application/x-www-form-urlencoded"
        },
        body: new URLSearchParams({ t: saved.link })
      });
    }).then(function (answer) {
      if (answer.status === 401) { throw new Error("the sign-in was not accepted (401)"); }
      return answer.text().then(function (page) {
        document.open();
        document.write(page);
        document.close();
      });
    }).catch(function (e) { status("Sign-in failed: " + e.message + "." + again); });
    return;
  }

  var button = document.getElementById("sign-in");
  if (!button) { return; }
  button.addEventListener("click", function () {
    button.disabled = true;
    var link = button.dataset.link, verifier = random(32);
    Promise.all([sha256(verifier), sha256(link)]).then(function (digests) {
      // The link's id (a hash, the link itself stays in this tab) and a one-time value.
      var state = b64url(digests[1]).slice(0, 22) + "." + random(16);
      sessionStorage.setItem("rollback-login:" + state, JSON.stringify({
        verifier: verifier, link: link, token: button.dataset.token, client: button.dataset.client
      }));
      var url = new URL(button.dataset.authorize);
      url.searchParams.set("response_type", "code");
      url.searchParams.set("client_id", button.dataset.client);
      url.searchParams.set("redirect_uri", here);
      url.searchParams.set("scope", "openid email");
      url.searchParams.set("state", state);
      url.searchParams.set("code_challenge", b64url(digests[0]));
      url.searchParams.set("code_challenge_method", "S256");
      location.assign(url.toString());
    }).catch(function (e) {
      button.disabled = false;
      status("Cannot start the sign-in here: " + e.message + ".");
    });
  });
})();
