// The OpenID provider the endoreg-oidc tests run against: the OpenID-certified `oidc-provider`, on
// loopback, issuing Keycloak-shaped tokens (realm_access.roles, resource_access.<client>.roles, groups
// with full paths such as /centers/<center_key>). TEST ONLY: fixed client secrets and a scripted login.
//
// Usage: node provider.js STATE_DIR
//   Listens on 127.0.0.1 with a port the kernel picks and prints `port <n>` on stdout; writes
//   STATE_DIR/keys.json (every signing key as PKCS#8, so the tests can forge tokens with a key the
//   provider publishes, and an outsider key it does not). Exits when its stdin closes, so a test process
//   that dies takes it along.
//
// Test hooks, outside the provider's own routes:
//   POST /__test/rotate       publish the second key generation and sign with it from now on
//                             (the first stays published, as a provider does while rotating)
//   GET  /__test/jwks-hits    how many times the JWKS document was fetched
//   GET  /interaction/:uid?login=<account>   the scripted login: signs <account> in and grants the
//                             requested scopes (no login page, no consent page)

import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import Provider from 'oidc-provider';

const stateDir = process.argv[2];
if (!stateDir) {
  console.error('usage: node provider.js STATE_DIR');
  process.exit(2);
}

const AUDIENCE = 'endoreg-registry';
const RESOURCE = 'urn:endoreg:registry';

// Keycloak-like accounts. Roles and groups as a Keycloak realm with a "groups" mapper (full path) and
// the default "roles" client scope would put them into tokens.
const ACCOUNTS = {
  alice: {
    name: 'Alice Example',
    preferred_username: 'alice',
    email: 'alice@hospital.example',
    realm_access: { roles: ['data_manager', 'offline_access', 'default-roles-endoreg'] },
    resource_access: { account: { roles: ['manage-account'] } },
    groups: ['/centers/uni_wuerzburg', '/centers/klinik_b', '/staff'],
  },
  bob: {
    name: 'Bob Example',
    preferred_username: 'bob',
    realm_access: { roles: ['default-roles-endoreg'] },
    resource_access: { 'registry-web': { roles: ['annotator'] } },
    groups: ['/centers/uni_wuerzburg'],
  },
  carol: {
    preferred_username: 'carol',
    realm_access: { roles: ['data_manager', 'service'] },
    groups: [],
  },
  dave: {
    preferred_username: 'dave',
    realm_access: { roles: ['endoregdb_user', 'default-roles-endoreg'] },
    groups: ['/centers/uni_wuerzburg'],
  },
};

// Machine clients (client credentials), one per signature algorithm, so every algorithm we accept is
// exercised with a token the provider signed.
const SERVICE_CLIENTS = {
  'svc-rs256': 'RS256',
  'svc-ps256': 'PS256',
  'svc-es256': 'ES256',
  'svc-eddsa': 'EdDSA',
};
const SERVICE_CLAIMS = {
  realm_access: { roles: ['service'] },
  groups: ['/centers/uni_wuerzburg'],
};

function generation(n) {
  const keys = [
    { kid: `rsa-${n}`, pair: generateKeyPairSync('rsa', { modulusLength: 2048 }) },
    { kid: `ec-${n}`, alg: 'ES256', pair: generateKeyPairSync('ec', { namedCurve: 'P-256' }) },
    { kid: `ed-${n}`, alg: 'EdDSA', pair: generateKeyPairSync('ed25519') },
  ];
  return keys.map(({ kid, alg, pair }) => ({
    kid,
    jwk: { ...pair.privateKey.export({ format: 'jwk' }), kid, use: 'sig', ...(alg ? { alg } : {}) },
    pkcs8: pair.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    spkiPem: pair.publicKey.export({ format: 'pem', type: 'spki' }),
  }));
}

const first = generation(1);
const second = generation(2);
const outsider = generation('outsider');

let jwksHits = 0;

function configuration(keys) {
  return {
    jwks: { keys: keys.map((k) => k.jwk) },
    clients: [
      {
        client_id: 'registry-web',
        client_secret: 'registry-web-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: ['https://registry.example/oidc/callback'],
        post_logout_redirect_uris: ['https://registry.example/signed-out'],
      },
      ...Object.entries(SERVICE_CLIENTS).map(([clientId]) => ({
        client_id: clientId,
        client_secret: `${clientId}-secret`,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      })),
    ],
    cookies: { keys: ['endoreg-oidc-test-cookie-key'] },
    pkce: { required: () => true },
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'realm_access', 'resource_access', 'groups'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
    },
    scopes: ['openid', 'profile', 'email', 'api'],
    async findAccount(_ctx, sub) {
      const account = ACCOUNTS[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    // Keycloak puts roles and groups into access tokens too.
    async extraTokenClaims(_ctx, token) {
      if (token.kind === 'ClientCredentials') return SERVICE_CLAIMS;
      if (token.accountId && ACCOUNTS[token.accountId]) {
        const { realm_access, resource_access, groups, preferred_username } = ACCOUNTS[token.accountId];
        return { realm_access, resource_access, groups, preferred_username, azp: token.clientId };
      }
      return undefined;
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => {
          if (resource !== RESOURCE) throw new Error(`unknown resource ${resource}`);
          return {
            scope: 'api',
            audience: AUDIENCE,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: SERVICE_CLIENTS[client.clientId] ?? 'RS256' } },
          };
        },
      },
    },
    ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60, Interaction: 300, Session: 600, Grant: 600 },
  };
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const generations = [
    new Provider(issuer, configuration(first)),
    // After rotation the new keys come first (signing picks the first fitting key) and the old ones
    // stay published so tokens signed before the rotation still verify.
    new Provider(issuer, configuration([...second, ...first])),
  ];
  for (const p of generations) {
    p.on('server_error', (_ctx, err) => console.error('provider server_error', err));
  }
  let current = 0;

  const keysFile = `${stateDir}/keys.json`;
  const describe = (k) => ({ kid: k.kid, kty: k.jwk.kty, alg: k.jwk.alg ?? null, pkcs8: k.pkcs8, spki_pem: k.spkiPem });
  writeFileSync(`${keysFile}.tmp`, JSON.stringify({
    issuer,
    audience: AUDIENCE,
    first: first.map(describe),
    second: second.map(describe),
    outsider: outsider.map(describe),
  }));
  renameSync(`${keysFile}.tmp`, keysFile);

  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    const provider = generations[current];
    try {
      if (url.pathname === '/__test/rotate' && req.method === 'POST') {
        current = 1;
        res.writeHead(204).end();
      } else if (url.pathname === '/__test/jwks-hits') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(String(jwksHits));
      } else if (url.pathname.startsWith('/interaction/')) {
        await interaction(provider, req, res, url);
      } else {
        if (url.pathname === '/jwks') jwksHits += 1;
        provider.callback()(req, res);
      }
    } catch (err) {
      console.error('test provider error', err);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  });

  process.stdout.write(`port ${port}\n`);
});

// The scripted login: the test names the account in the query string; the provider's own interaction
// state (cookies, uid) is checked by interactionDetails, so only the browser that started the
// authorization request can finish it.
async function interaction(provider, req, res, url) {
  const details = await provider.interactionDetails(req, res);
  const accountId = url.searchParams.get('login');
  if (!accountId || !ACCOUNTS[accountId]) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('name a known account: ?login=<account>');
    return;
  }
  const { params } = details;
  const grant = new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope));
  // The registry is the resource of every sign-in (as a Keycloak audience mapper would make it).
  grant.addResourceScope(RESOURCE, 'api');
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

// A failure inside the provider must show in the test's output, not end the process quietly.
process.on('uncaughtException', (err) => console.error('test provider: uncaught exception', err));
process.on('unhandledRejection', (err) => console.error('test provider: unhandled rejection', err));
process.on('exit', (code) => console.error(`test provider: exit ${code}`));
