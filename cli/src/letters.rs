//! Access letters: one printable A4 page per mairie — who it is for, the
//! address of the form, the access code (shown there only), what to declare
//! and when, whom to call — as a PDF (`pdf-writer`, the base-14 Helvetica:
//! nothing to embed, every reader has it).

use decompte_app::pdf::{document, Line};

/// One letter: a mairie and the code issued for it.
#[derive(Debug, Clone)]
pub struct Letter {
    /// INSEE code of the commune.
    pub commune: String,
    pub name: String,
    /// The access code, grouped as it is typed.
    pub access_code: String,
}

/// What every letter says of its sender and of the declaration.
#[derive(Debug, Clone)]
pub struct Sender {
    pub publisher: String,
    pub crisis: String,
    /// The app's public address, where mairies declare (`https://…`).
    pub app_url: String,
    /// The places of death, as the form names them.
    pub settings: Vec<String>,
}

/// The letters as one PDF, a page each.
pub fn pdf(letters: &[Letter], sender: &Sender) -> Vec<u8> {
    let pages: Vec<Vec<Line>> = letters.iter().map(|l| lines(l, sender)).collect();
    document(&pages)
}

/// The lines of one letter.
fn lines(letter: &Letter, sender: &Sender) -> Vec<Line> {
    let body = Line::paragraph;
    let gap = || vec![Line::gap()];
    let url = sender.app_url.trim_end_matches('/');
    let mut all = vec![Line::bold(13.0, sender.publisher.clone())];
    all.extend(gap());
    all.push(Line::plain(
        11.0,
        format!(
            "À l'attention de Madame ou Monsieur le Maire {} ({})",
            decompte_core::commune::of_name(&letter.name),
            letter.commune
        ),
    ));
    all.extend(gap());
    all.push(Line::bold(
        11.0,
        format!(
            "Objet : déclaration quotidienne des décès — {}",
            sender.crisis
        ),
    ));
    all.extend(gap());
    all.extend(body(
        "Madame, Monsieur le Maire, la préfecture suit chaque jour, commune par commune, les \
        décès liés à la crise selon le lieu où ils surviennent. Nous vous remercions de déclarer \
        ceux de votre commune sur le site ci-dessous, depuis un téléphone ou un ordinateur.",
    ));
    all.extend(gap());
    all.push(Line::plain(11.0, "Adresse du formulaire :"));
    all.push(Line::bold(13.0, format!("{url}/connexion")));
    all.extend(gap());
    all.push(Line::plain(
        11.0,
        "Votre code d'accès (les tirets et les majuscules sont facultatifs) :",
    ));
    all.push(Line::bold(15.0, letter.access_code.clone()));
    all.extend(body(
        "Ce code est personnel à votre mairie : ne le confiez qu'aux personnes chargées de la \
        déclaration. Il n'est écrit nulle part ailleurs que sur cette lettre. S'il est perdu ou \
        divulgué, demandez-en un nouveau à la préfecture : l'ancien cessera aussitôt de \
        fonctionner.",
    ));
    all.extend(gap());
    all.push(Line::bold(11.0, "Ce qu'il faut déclarer, et quand"));
    all.extend(body(&format!(
        "Chaque jour, de préférence avant 14 heures, le nombre de décès survenus dans la commune \
        la veille et le jour même, selon le lieu du décès : {}. Aucun nom : seulement des \
        nombres. Un jour sans décès se déclare aussi, en un clic (« Aucun décès ce jour ») : \
        c'est ainsi que la préfecture sait que votre commune a répondu. Une erreur se corrige \
        sur le même formulaire ; toutes les versions sont conservées.",
        sender.settings.join(", ")
    )));
    all.extend(gap());
    all.push(Line::bold(11.0, "Aide"));
    all.extend(body(&format!(
        "Le mode d'emploi tient en une page : {url}/aide. Pour toute question, appelez la \
        cellule de crise de la {}.",
        sender.publisher
    )));
    all.extend(gap());
    all.extend(body(
        "Nous vous remercions de votre concours. Les chiffres de toutes les communes sont \
        publiés chaque jour sur le site public de la préfecture.",
    ));
    all
}
