//! Printable documents as PDF (`pdf-writer`, the base-14 Helvetica: nothing
//! to embed, every reader has it): lines of text, bold or not, cut between
//! words, on A4 pages. The access letters and the morning report are made
//! of them.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// One line of a document; an empty text is a gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub bold: bool,
    pub size: f32,
    pub text: String,
}

impl Line {
    pub fn bold(size: f32, text: impl Into<String>) -> Self {
        Self {
            bold: true,
            size,
            text: text.into(),
        }
    }

    pub fn plain(size: f32, text: impl Into<String>) -> Self {
        Self {
            bold: false,
            size,
            text: text.into(),
        }
    }

    pub fn gap() -> Self {
        Self::plain(11.0, "")
    }

    /// A paragraph of body text (11 pt), cut into lines.
    pub fn paragraph(text: &str) -> Vec<Self> {
        wrap(text, LINE)
            .into_iter()
            .map(|line| Self::plain(11.0, line))
            .collect()
    }
}

const PAGE: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 72.0;
/// Characters per line of body text: Helvetica 11 pt averages under 5.5 pt
/// a character, and the text block is 451 pt wide.
pub const LINE: usize = 82;

/// `pages` as one PDF, each page's lines from the top; a page too long for
/// A4 goes on over as many pages as it needs.
pub fn document(pages: &[Vec<Line>]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let mut next = 5;
    let mut kids = Vec::new();
    pdf.catalog(catalog).pages(tree);
    for lines in pages.iter().flat_map(|lines| paginate(lines)) {
        let (page, content) = (Ref::new(next), Ref::new(next + 1));
        next += 2;
        kids.push(page);
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
        pdf.stream(content, &page_text(lines));
    }
    let count = i32::try_from(kids.len()).unwrap_or(i32::MAX);
    pdf.pages(tree).kids(kids).count(count);
    for (id, font) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(id)
            .base_font(Name(font.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.finish()
}

/// `lines` cut into A4 pages.
fn paginate(lines: &[Line]) -> Vec<&[Line]> {
    let mut pages = Vec::new();
    let (mut start, mut height) = (0, 0.0);
    for (at, line) in lines.iter().enumerate() {
        let step = line.size * 1.4;
        if height + step > PAGE.1 - 2.0 * MARGIN && at > start {
            pages.push(&lines[start..at]);
            (start, height) = (at, 0.0);
        }
        height += step;
    }
    pages.push(&lines[start..]);
    pages
}

/// The content stream of one page.
fn page_text(lines: &[Line]) -> Vec<u8> {
    let mut content = Content::new();
    content.begin_text();
    let mut y = PAGE.1 - MARGIN;
    let mut first = true;
    for line in lines {
        y -= line.size * 1.4;
        content.set_font(Name(if line.bold { b"F2" } else { b"F1" }), line.size);
        if first {
            content.next_line(MARGIN, y);
            first = false;
        } else {
            content.next_line(0.0, -line.size * 1.4);
        }
        content.show(Str(&win_ansi(&line.text)));
    }
    content.end_text();
    content.finish().to_vec()
}

/// `text` in lines of at most `width` characters, cut between words.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
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
            '−' => b'-',
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

    #[test]
    fn a_long_page_goes_on_over_the_next() {
        let lines: Vec<Line> = (0..100).map(|i| Line::plain(11.0, i.to_string())).collect();
        let pages = paginate(&lines);
        // 45 lines of 11 pt (15.4 pt apart) fill the 698 pt between the margins.
        assert_eq!(
            pages.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [45, 45, 10]
        );
    }
}
