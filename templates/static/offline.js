// decompte: the declaration form keeps working when the network drops.
// Progressive enhancement: without this script the form posts as usual.
// A declaration sent while the network is down is kept on the phone
// ("en attente d'envoi") with an idempotency key chosen when it was typed,
// and sent when the network is back: sent twice, it is saved once. A service
// worker (sw.js) keeps the last form page, so a reload offline shows it.
(function () {
  "use strict";
  var KEY = "decompte.en-attente";
  var PAGE_CACHE = "decompte-formulaire-v1";

  // Everything kept on this phone or computer, whoever typed it.
  function kept() {
    try {
      return JSON.parse(localStorage.getItem(KEY) || "[]");
    } catch (e) {
      return [];
    }
  }

  // The credential this page is for ("" when nobody is logged in): on a
  // shared computer, what one code typed is sent by that code's sessions
  // only, never under whoever logs in next.
  function owner() {
    return document.documentElement.getAttribute("data-code") || "";
  }

  // What this credential typed and still waits for the network.
  function pending() {
    var me = owner();
    return kept().filter(function (p) {
      return me && p.owner === me;
    });
  }

  // What other credentials typed on this device.
  function others() {
    var me = owner();
    return kept().filter(function (p) {
      return !me || p.owner !== me;
    });
  }

  // Replaces this credential's part of what is kept, leaves the others'.
  function keepMine(list) {
    localStorage.setItem(KEY, JSON.stringify(others().concat(list)));
  }

  function token() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function frenchDate(iso) {
    var parts = String(iso).split("-");
    return parts.length === 3 ? parts[2] + "/" + parts[1] + "/" + parts[0] : iso;
  }

  function field(fields, name) {
    for (var i = 0; i < fields.length; i++) {
      if (fields[i][0] === name) return fields[i][1];
    }
    return "";
  }

  // Said above the list when this page is the phone's copy.
  var note = "";

  // The box that lists the declarations waiting for the network.
  function show() {
    var main = document.getElementById("contenu") || document.body;
    var box = document.getElementById("en-attente");
    var list = pending();
    var foreign = others().length;
    if (!list.length && !note && !foreign) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = document.createElement("div");
      box.id = "en-attente";
      box.className = "fr-alert fr-alert--info fr-alert--sm";
      box.setAttribute("role", "status");
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = "";
    if (note) {
      var said = document.createElement("p");
      said.textContent = note;
      box.appendChild(said);
    }
    if (list.length) {
      var title = document.createElement("p");
      var strong = document.createElement("strong");
      strong.textContent = "En attente d'envoi (" + list.length + ")";
      title.appendChild(strong);
      box.appendChild(title);
      var ul = document.createElement("ul");
      list.forEach(function (item) {
        var li = document.createElement("li");
        li.textContent =
          (item.name ? item.name + " (" + item.commune + ")" : "Commune " + item.commune) +
          ", jour du " + frenchDate(item.date) +
          " — saisie à " + item.typedAt + (item.problem ? " — " + item.problem : "");
        ul.appendChild(li);
      });
      box.appendChild(ul);
      var hint = document.createElement("p");
      hint.textContent =
        "La déclaration est gardée sur ce téléphone et sera envoyée dès le retour du réseau.";
      box.appendChild(hint);
    }
    if (foreign) {
      var theirs = document.createElement("p");
      theirs.textContent = foreignWaiting(foreign, !owner());
      box.appendChild(theirs);
    }
  }

  // What other codes typed here and left waiting, said to the one logged
  // in, or on the login page (`nobody`) to whoever logs in next.
  function foreignWaiting(count, nobody) {
    if (nobody) {
      return count === 1
        ? "1 déclaration saisie sur cet appareil attend le réseau : elle sera envoyée quand " +
          "le code d'accès qui l'a saisie se reconnectera ici, jamais sous un autre code."
        : count + " déclarations saisies sur cet appareil attendent le réseau : chacune " +
          "sera envoyée quand le code d'accès qui l'a saisie se reconnectera ici, jamais " +
          "sous un autre code.";
    }
    return count === 1
      ? "1 déclaration saisie sur cet appareil avec un autre code d'accès attend le réseau : " +
        "elle sera envoyée quand ce code se reconnectera ici, jamais sous le vôtre."
      : count + " déclarations saisies sur cet appareil avec d'autres codes d'accès " +
        "attendent le réseau : elles seront envoyées quand ces codes se reconnecteront ici, " +
        "jamais sous le vôtre.";
  }

  // « Se déconnecter » with declarations still waiting: say so, and offer
  // to send them first or to discard them. The phone's copy of the form is
  // dropped at logout, so that the next person does not get it offline.
  function guardLogout(form) {
    var confirmed = false;
    form.addEventListener("submit", function (event) {
      if (confirmed) return;
      event.preventDefault();
      var leave = function () {
        confirmed = true;
        var dropped = "caches" in window ? caches.delete(PAGE_CACHE) : Promise.resolve();
        dropped.catch(function () {}).then(function () {
          form.submit();
        });
      };
      var list = pending();
      if (!list.length) {
        leave();
        return;
      }
      var main = document.getElementById("contenu") || document.body;
      var old = document.getElementById("avant-deconnexion");
      if (old) old.remove();
      var box = document.createElement("div");
      box.id = "avant-deconnexion";
      box.className = "fr-alert fr-alert--warning fr-alert--sm";
      box.setAttribute("role", "alert");
      var title = document.createElement("p");
      var strong = document.createElement("strong");
      strong.textContent = list.length === 1
        ? "1 déclaration en attente d'envoi"
        : list.length + " déclarations en attente d'envoi";
      title.appendChild(strong);
      box.appendChild(title);
      var said = document.createElement("p");
      said.textContent =
        "Elle n'est pas encore enregistrée. Envoyez-la avant de vous déconnecter ; si vous " +
        "l'abandonnez, elle est effacée de cet appareil.";
      box.appendChild(said);
      var buttons = document.createElement("p");
      var send = document.createElement("button");
      send.type = "button";
      send.className = "fr-btn fr-btn--sm";
      send.textContent = "Envoyer maintenant";
      send.addEventListener("click", function () {
        if (!navigator.onLine) {
          said.textContent =
            "Pas de réseau pour l'instant : restez connecté, elle partira dès son retour.";
          return;
        }
        flush();
      });
      var drop = document.createElement("button");
      drop.type = "button";
      drop.className = "fr-btn fr-btn--secondary fr-btn--sm";
      drop.textContent = "L'abandonner et me déconnecter";
      drop.addEventListener("click", function () {
        keepMine([]);
        show();
        if (!navigator.onLine) {
          // A logout needs the server: without network, only the phone forgets.
          title.textContent = "Déclaration effacée de cet appareil";
          said.textContent =
            "Sans réseau, la déconnexion n'est pas possible : appuyez de nouveau sur « Se " +
            "déconnecter » au retour du réseau.";
          buttons.remove();
          return;
        }
        leave();
      });
      buttons.appendChild(send);
      buttons.appendChild(document.createTextNode(" "));
      buttons.appendChild(drop);
      box.appendChild(buttons);
      main.insertBefore(box, main.firstChild);
      send.focus();
    });
  }

  // Sends one form's fields; resolves to the server's answer, rejects if
  // the network is down.
  function post(fields) {
    var body = new URLSearchParams();
    fields.forEach(function (pair) {
      body.append(pair[0], pair[1]);
    });
    return fetch("/saisie", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
  }

  // What to do with the server's answer to a form, once `done` has
  // forgotten it: a confirmation is shown as after a normal send; any other
  // page (a conflict, an error, a warning to confirm) replaces this one, as
  // it would have. A login page (the session ended) keeps it: "login".
  function answer(response, done) {
    if (response.redirected && /\/connexion/.test(response.url)) {
      return Promise.resolve("login");
    }
    done();
    if (response.redirected && /\/saisie\?/.test(response.url)) {
      location.assign(response.url);
      return Promise.resolve("sent");
    }
    return response.text().then(function (html) {
      document.open();
      document.write(html);
      document.close();
      return "shown";
    });
  }

  var flushing = false;
  function flush() {
    if (flushing || !navigator.onLine) return;
    var list = pending();
    if (!list.length) return;
    flushing = true;
    var item = list[0];
    var forget = function () {
      keepMine(pending().filter(function (p) {
        return p.key !== item.key;
      }));
    };
    // The session's CSRF token as this page has it: a declaration kept
    // across a new login is sent with the new session's.
    var current = document.querySelector("input[name=csrf]");
    var fields = item.fields.map(function (pair) {
      return pair[0] === "csrf" && current ? ["csrf", current.value] : pair;
    });
    post(fields)
      .then(function (response) {
        // No session (it ended, or this device's browser was cleared): the
        // declaration stays, for its own code's next login.
        if (response.status === 401) return "login";
        return answer(response, forget);
      })
      .then(function (outcome) {
        if (outcome === "login") {
          item.problem = "reconnectez-vous : elle sera envoyée ensuite";
          keepMine(pending().map(function (p) {
            return p.key === item.key ? item : p;
          }));
        }
        show();
      })
      .catch(function () {
        show();
      })
      .then(function () {
        flushing = false;
      });
  }

  // Keeps a declaration for later. Its idempotency key is chosen when it is
  // typed: the token it was already sent with if a send failed on the way
  // (the server may have saved it: the same key gets the same answer), a
  // new one otherwise.
  function queue(fields, sentOnce, name) {
    var key = sentOnce ? field(fields, "submission") : "";
    if (!/^[0-9a-f]{32}$/.test(key)) key = token();
    fields = fields.filter(function (pair) {
      return pair[0] !== "submission";
    });
    fields.push(["submission", key]);
    var now = new Date();
    var list = pending();
    list.push({
      key: key,
      owner: owner(),
      fields: fields,
      commune: field(fields, "commune"),
      name: name || "",
      date: field(fields, "date"),
      typedAt: now.getHours() + " h " + ("0" + now.getMinutes()).slice(-2),
    });
    keepMine(list);
    show();
  }

  function enhance(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form, event.submitter || undefined);
      var fields = [];
      data.forEach(function (value, name) {
        fields.push([name, String(value)]);
      });
      if (!navigator.onLine) {
        queue(fields, false, form.dataset.nom);
        return;
      }
      post(fields)
        .then(function (response) {
          if (response.redirected && /\/connexion/.test(response.url)) {
            // The session ended: keep the declaration, log in, it goes after.
            queue(fields, true, form.dataset.nom);
            location.assign("/connexion");
            return;
          }
          return answer(response, function () {});
        })
        .catch(function () {
          queue(fields, true, form.dataset.nom);
        });
    });
  }

  // Keeps this form page (as it stands before any change by this script)
  // for a reload without network, marked as the phone's copy.
  function keepPage() {
    if (!("caches" in window) || !/^\/saisie/.test(location.pathname)) return;
    if (document.documentElement.hasAttribute("data-copie")) return;
    var copy = document.documentElement.cloneNode(true);
    copy.setAttribute("data-copie", "hors-ligne");
    var html = "<!doctype html>\n" + copy.outerHTML;
    caches.open(PAGE_CACHE).then(function (cache) {
      var page = new Response(html, { headers: { "Content-Type": "text/html; charset=utf-8" } });
      return Promise.all([cache.put("/saisie", page.clone()), cache.put(location.href, page)]);
    });
  }

  function start() {
    if (/^\/(connexion|deconnexion)/.test(location.pathname) && "caches" in window) {
      // Nobody is logged in: the phone keeps no form page.
      caches.delete(PAGE_CACHE);
    }
    keepPage();
    if (document.documentElement.getAttribute("data-copie") === "hors-ligne") {
      note = "Hors ligne : ce formulaire est la copie gardée sur ce téléphone.";
    }
    var form = document.querySelector("form[method=post][action='/saisie']");
    if (form && window.fetch && window.URLSearchParams) enhance(form);
    var logout = document.querySelector("form[action='/deconnexion']");
    if (logout) guardLogout(logout);
    show();
    flush();
    window.addEventListener("online", flush);
    // A network that comes back without saying so: try again now and then.
    setInterval(function () {
      if (pending().length) flush();
    }, 15000);
    window.addEventListener("offline", function () {
      show();
    });
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/app/sw.js", { scope: "/" }).catch(function () {});
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
