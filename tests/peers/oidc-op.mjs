// The OpenID provider the web tests sign in through: panva's `oidc-provider` (a certified
// OpenID Provider, installed by scripts/deps/oidc.sh), configured here and nothing more. This
// file is its configuration and the login page every deployment of that library writes itself
// (the library ships no production login UI); tokens, codes, PKCE, discovery, JWKS and ID-token
// signing are all the library's.
//
// Usage: node oidc-op.mjs CERT.pem KEY.pem ACCOUNTS.json CLIENT_SECRET_FILE
// 1. listens on https://127.0.0.1:<free port> and prints `issuer https://127.0.0.1:PORT`;
// 2. reads one line from stdin: the relying party's redirect URI (the test learns it only
//    after the collector has started with this issuer);
// 3. builds the provider with the client `tillsyn` and prints `ready`.
// ACCOUNTS.json: {"login": {"email": "...", "name": "...", "groups": ["..."]}, ...}.
// The login page asks for the login name and whether a second factor was used; the answer
// becomes the session's `amr` (["pwd", "otp", "mfa"] or ["pwd"]) and `acr` ("mfa" or "pwd").
import https from 'node:https';
import fs from 'node:fs';
import readline from 'node:readline';
import { createRequire } from 'node:module';

const require = createRequire(process.env.TILLSYN_OIDC_PROVIDER_DIR
  ? `${process.env.TILLSYN_OIDC_PROVIDER_DIR}/package.json`
  : '/opt/tillsyn-oidc/package.json');
const { default: Provider } = await import(require.resolve('oidc-provider'));

const [certFile, keyFile, accountsFile, secretFile] = process.argv.slice(2);
const accounts = JSON.parse(fs.readFileSync(accountsFile, 'utf8'));
const clientSecret = fs.readFileSync(secretFile, 'utf8').trim();

let handler = (req, res) => { res.statusCode = 503; res.end('starting'); };
const server = https.createServer(
  { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) },
  (req, res) => handler(req, res),
);
server.listen(0, '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
  console.log(`issuer ${issuer}`);
  const lines = readline.createInterface({ input: process.stdin });
  lines.once('line', (redirectUri) => {
    start(issuer, redirectUri.trim());
    console.log('ready');
  });
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function start(issuer, redirectUri) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'tillsyn',
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    acrValues: ['mfa', 'pwd'],
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      // acr and amr ride on the openid scope so every ID token states how the person signed in.
      openid: ['sub', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
      auth_time: null,
    },
    // Put the scopes' claims in the ID token itself (the collector reads them there).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['tillsyn-test-cookie-key-0123456789abcdef'] },
    async findAccount(ctx, sub) {
      const account = accounts[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: account.email,
            email_verified: account.email_verified ?? true,
            name: account.name,
            groups: account.groups,
          };
        },
      };
    },
  });
  provider.proxy = false;
  const callback = provider.callback();

  handler = async (req, res) => {
    const match = req.url.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'POST' && match[2]) {
        const body = new URLSearchParams(await readBody(req));
        const login = body.get('login') ?? '';
        if (!accounts[login]) return loginPage(res, details.uid, 'unknown login');
        const mfa = body.get('mfa') === 'on';
        return provider.interactionFinished(req, res, {
          login: { accountId: login, amr: mfa ? ['pwd', 'otp', 'mfa'] : ['pwd'], acr: mfa ? 'mfa' : 'pwd' },
        }, { mergeWithLastSubmission: false });
      }
      if (details.prompt.name === 'login') return loginPage(res, details.uid, '');
      // Consent: grant what the client asked for (the test's client is first-party).
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      if (missing.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (error) {
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain');
      res.end(`interaction failed: ${error.message}`);
    }
  };
}

function loginPage(res, uid, error) {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1><p id="error">${escape(error)}</p>
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Login <input id="idp-login" name="login" autocomplete="username"></label>
<label><input id="idp-mfa" type="checkbox" name="mfa"> second factor used</label>
<button id="idp-submit" type="submit">Sign in</button></form></body></html>`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; if (data.length > 65536) req.destroy(); });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}
