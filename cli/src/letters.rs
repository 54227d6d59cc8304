//! Access letters: one printable A4 page per mairie — who it is for, the
//! address of the form, the access code (shown there only), what to declare
//! and when, whom to call — as a PDF (`pdf-writer`, the base-14 Helvetica:
//! nothing to embed, every reader has it).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

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

const PAGE: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 72.0;
/// Characters per line of body text: Helvetica 11 pt averages under 5.5 pt
/// a character, and the text block is 451 pt wide.
const LINE: usize = 82;

/// The letters as one PDF, a page each.
pub fn pdf(letters: &[Letter], sender: &Sender) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let mut next = 5;
    let mut pages = Vec::new();
    pdf.catalog(catalog).pages(tree);
    for letter in letters {
        let (page, content) = (Ref::new(next), Ref::new(next + 1));
        next += 2;
        pages.push(page);
        let mut writer = pdf.page(page);
        writer
            .media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1))
            .parent(tree)
            .contents(content);
        writer
            .resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        writer.finish();
        let text = page_text(letter, sender);
        pdf.stream(content, &text);
    }
    let count = i32::try_from(pages.len()).unwrap_or(i32::MAX);
    pdf.pages(tree).kids(pages).count(count);
    for (id, font) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(id)
            .base_font(Name(font.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.finish()
}

/// The lines of one letter: (bold?, size, text), a blank text for a gap.
fn lines(letter: &Letter, sender: &Sender) -> Vec<(bool, f32, String)> {
    let body = |text: &str| {
        wrap(text, LINE)
            .into_iter()
            .map(|line| (false, 11.0, line))
            .collect::<Vec<_>>()
    };
    let gap = || vec![(false, 11.0, String::new())];
    let url = sender.app_url.trim_end_matches('/');
    let mut all = vec![(true, 13.0, sender.publisher.clone())];
    all.extend(gap());
    all.push((
        false,
        11.0,
        format!(
            "À l'attention de Madame ou Monsieur le Maire {} ({})",
            decompte_core::commune::of_name(&letter.name),
            letter.commune
        ),
    ));
    all.extend(gap());
    all.push((
        true,
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
    all.push((false, 11.0, "Adresse du formulaire :".into()));
    all.push((true, 13.0, format!("{url}/connexion")));
    all.extend(gap());
    all.push((
        false,
        11.0,
        "Votre code d'accès (les tirets et les majuscules sont facultatifs) :".into(),
    ));
    all.push((true, 15.0, letter.access_code.clone()));
    all.extend(body(
        "Ce code est personnel à votre mairie : ne le confiez qu'aux personnes chargées de la \
        déclaration. Il n'est écrit nulle part ailleurs que sur cette lettre. S'il est perdu ou \
        divulgué, demandez-en un nouveau à la préfecture : l'ancien cessera aussitôt de \
        fonctionner.",
    ));
    all.extend(gap());
    all.push((true, 11.0, "Ce qu'il faut déclarer, et quand".into()));
    all.extend(body(&format!(
        "Chaque jour, de préférence avant 14 heures, le nombre de décès survenus dans la commune \
        la veille et le jour même, selon le lieu du décès : {}. Aucun nom : seulement des \
        nombres. Un jour sans décès se déclare aussi, en un clic (« Aucun décès ce jour ») : \
        c'est ainsi que la préfecture sait que votre commune a répondu. Une erreur se corrige \
        sur le même formulaire ; toutes les versions sont conservées.",
        sender.settings.join(", ")
    )));
    all.extend(gap());
    all.push((true, 11.0, "Aide".into()));
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

/// The content stream of one letter's page.
fn page_text(letter: &Letter, sender: &Sender) -> Vec<u8> {
    let mut content = Content::new();
    content.begin_text();
    let mut y = PAGE.1 - MARGIN;
    let mut first = true;
    for (bold, size, text) in lines(letter, sender) {
        y -= size * 1.4;
        content.set_font(Name(if bold { b"F2" } else { b"F1" }), size);
        if first {
            content.next_line(MARGIN, y);
            first = false;
        } else {
            content.next_line(0.0, -size * 1.4);
        }
        content.show(Str(&win_ansi(&text)));
    }
    content.end_text();
    content.finish().to_vec()
}

/// `text` in lines of at most `width` characters, cut between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` in the PDF's WinAnsiEncoding (Windows-1252): French letters,
/// guillemets and dashes included; anything else becomes `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' => c as u8,
            '\u{a0}' | '\u{202f}' => 0xa0,
            '\u{a1}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            '—' => 0x97,
            'Œ' => 0x8c,
            'œ' => 0x9c,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_text_in_win_ansi() {
        assert_eq!(
            win_ansi("é à ç « œ — €"),
            [0xe9, 32, 0xe0, 32, 0xe7, 32, 0xab, 32, 0x9c, 32, 0x97, 32, 0x80]
        );
        assert_eq!(win_ansi("日"), b"?");
    }

    #[test]
    fn lines_are_cut_between_words() {
        let lines = wrap("un deux trois quatre cinq", 10);
        assert_eq!(lines, ["un deux", "trois", "quatre", "cinq"]);
        assert!(lines.iter().all(|l| l.chars().count() <= 10));
    }
}
