// decompte — the session of the app ends after a while without activity
// (data-idle-seconds on <html>: 30 minutes for a prefecture, two hours for a
// mairie). This script says so before it happens, with a button that keeps
// the session (RGAA 13.1), keeps it by itself while someone types, and says
// when it has ended. Without it, nothing changes: the next request leads to
// the login page.
(function () {
  "use strict";
  var root = document.documentElement;
  // The request of this page has just kept the session.
  var lastContact = Date.now();
  var timers = [];
  var box = null;

  function seconds(name, fallback) {
    var value = Number(root.getAttribute(name));
    return value > 0 ? value : fallback;
  }

  function clear() {
    timers.forEach(clearTimeout);
    timers = [];
  }

  function hide() {
    if (box) {
      box.remove();
      box = null;
    }
  }

  function show(text, action) {
    hide();
    box = document.createElement("div");
    box.className = "fr-alert fr-alert--warning fr-alert--sm session-alert";
    box.setAttribute("role", "alert");
    var message = document.createElement("p");
    message.textContent = text;
    box.appendChild(message);
    if (action) {
      box.appendChild(action);
    }
    var main = document.querySelector("main") || document.body;
    main.insertBefore(box, main.firstChild);
  }

  function inWords(total) {
    if (total >= 60) {
      var minutes = Math.round(total / 60);
      return minutes + (minutes > 1 ? " minutes" : " minute");
    }
    return Math.round(total) + " secondes";
  }

  function warn(remaining) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "fr-btn fr-btn--sm";
    button.textContent = "Rester connecté";
    button.addEventListener("click", keep);
    show(
      "Sans activité de votre part, votre session se terminera dans " + inWords(remaining) +
        " : ce qui n'est pas encore enregistré serait à saisir de nouveau après la connexion.",
      button
    );
  }

  function ended() {
    clear();
    var link = document.createElement("a");
    link.className = "fr-link";
    link.href = "/connexion";
    link.textContent = "Se reconnecter";
    show("Votre session s'est terminée faute d'activité.", link);
  }

  function schedule() {
    clear();
    var idle = seconds("data-idle-seconds", 0);
    if (!idle) {
      return;
    }
    var before = Math.min(seconds("data-warn-seconds", 120), idle / 2);
    var end = lastContact + idle * 1000;
    var now = Date.now();
    timers.push(setTimeout(function () {
      warn(Math.max(0, (end - Date.now()) / 1000));
    }, Math.max(0, end - before * 1000 - now)));
    timers.push(setTimeout(ended, Math.max(0, end - now)));
  }

  function keep() {
    return fetch("/connexion/session", { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (answer.status === 204) {
          lastContact = Date.now();
          hide();
          schedule();
        } else if (answer.status === 401) {
          ended();
        }
      })
      .catch(function () {
        // No network: the form's offline mode keeps what is typed.
      });
  }

  // Typing is activity: the session is kept, once a minute at most.
  document.addEventListener("input", function () {
    if (Date.now() - lastContact > 60000) {
      keep();
    }
  });
  // Back to the page: the timers are set again (a sleeping phone delays them).
  window.addEventListener("focus", schedule);
  schedule();
})();
