// A certified OpenID provider (npm oidc-provider) on loopback, standing in
// for ProConnect in the tests: authorisation code flow with PKCE, one
// confidential client (client_secret_post), and its development login page,
// where the login typed is the account and its e-mail address
// (`sub|address` gives another account the same address). A password
// ending in `+otp` stands for a second factor (`amr` pwd and otp, `acr`
// eidas2), any other for a password alone; an address starting with
// `nonverifie` is not verified (`email_verified` false).
//
//   node provider.mjs PORT REDIRECT_URI
import http from "node:http";
import Provider from "oidc-provider";

const [port, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "decompte",
      client_secret: "secret-de-test-du-fournisseur",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
      post_logout_redirect_uris: [redirectUri.replace("/connexion/proconnect/retour", "/connexion?deconnecte=1")],
    },
  ],
  pkce: { required: () => true },
  scopes: ["openid", "email", "given_name", "usual_name"],
  claims: {
    acr: null,
    amr: null,
    auth_time: null,
    sid: null,
    openid: ["sub"],
    email: ["email", "email_verified"],
    given_name: ["given_name"],
    usual_name: ["usual_name"],
  },
  async findAccount(ctx, id) {
    const email = id.includes("|") ? id.split("|")[1] : id;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email,
          email_verified: !email.startsWith("nonverifie"),
          given_name: "Camille",
          usual_name: "Agent",
        };
      },
    };
  },
  features: { devInteractions: { enabled: true }, claimsParameter: { enabled: true } },
  cookies: { keys: ["decompte-test-cookie-key"] },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
});

// The development login page's step, with how the agent authenticated
// (in front of the provider: its own routes answer before any middleware
// added to it).
const handle = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    if (req.method === "POST" && /^\/interaction\/[^/?]+$/.test(req.url)) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === "login") {
        let body = "";
        for await (const chunk of req) body += chunk;
        const form = new URLSearchParams(body);
        const otp = (form.get("password") || "").endsWith("+otp");
        await provider.interactionFinished(
          req,
          res,
          {
            login: {
              accountId: form.get("login"),
              amr: otp ? ["pwd", "otp"] : ["pwd"],
              acr: otp ? "eidas2" : "eidas1",
            },
          },
          { mergeWithLastSubmission: false },
        );
        return;
      }
    }
  } catch (error) {
    res.statusCode = 400;
    res.end(String(error));
    return;
  }
  handle(req, res);
});

server.listen(Number(port), "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
