// Tillsyn: the browser side of the passkey ceremonies (collector/src/web/passkey.rs and
// security.rs). It only calls navigator.credentials.create/get, converts between base64url
// and ArrayBuffer, and posts JSON carrying the page's CSRF token; every check is the
// server's. Without JavaScript the sign-in page keeps its password + code form.
"use strict";

(function () {
  function fromB64u(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  }

  function toB64u(buffer) {
    let bin = "";
    new Uint8Array(buffer).forEach((b) => { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { /* not JSON: keep the status */ }
    if (!response.ok) { throw new Error(data.error || String(response.status)); }
    return data;
  }

  function showError(message) {
    const box = document.getElementById("passkey-error");
    if (box) { box.textContent = message; box.hidden = false; }
  }

  function creationOptions(options) {
    const o = options.publicKey;
    o.challenge = fromB64u(o.challenge);
    o.user.id = fromB64u(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = fromB64u(c.id); });
    return { publicKey: o };
  }

  function requestOptions(options) {
    const o = options.publicKey;
    o.challenge = fromB64u(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = fromB64u(c.id); });
    return { publicKey: o };
  }

  function registration(c) {
    return {
      id: c.id,
      rawId: toB64u(c.rawId),
      type: c.type,
      response: {
        attestationObject: toB64u(c.response.attestationObject),
        clientDataJSON: toB64u(c.response.clientDataJSON),
      },
      extensions: c.getClientExtensionResults(),
    };
  }

  function assertion(c) {
    return {
      id: c.id,
      rawId: toB64u(c.rawId),
      type: c.type,
      response: {
        authenticatorData: toB64u(c.response.authenticatorData),
        clientDataJSON: toB64u(c.response.clientDataJSON),
        signature: toB64u(c.response.signature),
        userHandle: c.response.userHandle ? toB64u(c.response.userHandle) : null,
      },
      extensions: c.getClientExtensionResults(),
    };
  }

  function csrfOf(element) {
    const field = element.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }

  // The sign-in page: password first, then the passkey instead of the code.
  const signIn = document.getElementById("passkey-login");
  if (signIn && window.PublicKeyCredential) {
    const form = document.querySelector("form.stack");
    signIn.hidden = false;
    document.getElementById("passkey-help").hidden = false;
    signIn.addEventListener("click", async () => {
      try {
        const csrf = csrfOf(form);
        const options = await post("/login/passkey/start", {
          csrf: csrf,
          email: document.getElementById("email").value,
          password: document.getElementById("password").value,
        });
        const credential = await navigator.credentials.get(requestOptions(options));
        const done = await post("/login/passkey/finish", { csrf: csrf, credential: assertion(credential) });
        window.location.assign(done.redirect);
      } catch (e) {
        showError(e.message);
      }
    });
  }

  // The security page: label and a current code, then the new passkey.
  const add = document.getElementById("passkey-add");
  if (add && window.PublicKeyCredential) {
    const submit = document.getElementById("passkey-add-submit");
    submit.disabled = false;
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const csrf = csrfOf(add);
        const options = await post("/security/passkeys/start", {
          csrf: csrf,
          label: document.getElementById("passkey-label").value,
          code: document.getElementById("passkey-code").value,
        });
        const credential = await navigator.credentials.create(creationOptions(options));
        const done = await post("/security/passkeys/finish", { csrf: csrf, credential: registration(credential) });
        window.location.assign(done.redirect);
      } catch (e) {
        showError(e.message);
      }
    });
  }
})();
