//! Title artwork: each title has several variants (palette and layout), drawn
//! here as 16:9 SVG posters. Later the artwork bandit picks among variants.

use crate::error::{check_id, ApiError, ApiResult, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Style {
    pub from: String,
    pub to: String,
    pub accent: String,
    pub layout: String,
}

const PALETTES: [(&str, &str, &str); 8] = [
    ("#1a1a2e", "#e94560", "#ffd166"),
    ("#0f2027", "#2c5364", "#7ee8fa"),
    ("#2d1b69", "#b8336a", "#f9c80e"),
    ("#134e5e", "#71b280", "#f4f1de"),
    ("#42275a", "#734b6d", "#ffafcc"),
    ("#000428", "#004e92", "#ff9f1c"),
    ("#3a1c71", "#d76d77", "#ffaf7b"),
    ("#232526", "#414345", "#e50914"),
];
const LAYOUTS: [&str; 3] = ["rings", "bars", "diagonal"];

/// Three variants for a title, chosen from its name so they are stable.
pub fn default_styles(name: &str) -> Vec<(String, String)> {
    let seed = name.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619)) as usize;
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (from, to, accent) = PALETTES[(seed + i * 3) % PALETTES.len()];
            let style = Style {
                from: from.into(),
                to: to.into(),
                accent: accent.into(),
                layout: LAYOUTS[(seed / 7 + i) % LAYOUTS.len()].into(),
            };
            (v.to_string(), serde_json::to_string(&style).unwrap_or_default())
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Draws a poster; colours that are not `#rrggbb` fall back to safe ones.
/// A backdrop (`with_name` false) leaves the name out, for pages that set it
/// in type over the image.
pub fn render(name: &str, style: &Style, with_name: bool) -> String {
    let pick = |c: &str, d: &'static str| if is_color(c) { c.to_string() } else { d.to_string() };
    let (from, to, accent) = (pick(&style.from, "#222222"), pick(&style.to, "#444444"), pick(&style.accent, "#e50914"));
    let shapes = match style.layout.as_str() {
        "rings" => format!(
            "<circle cx='1180' cy='150' r='300' fill='none' stroke='{accent}' stroke-width='28' opacity='.55'/>\
             <circle cx='1180' cy='150' r='190' fill='none' stroke='{accent}' stroke-width='14' opacity='.35'/>"
        ),
        "bars" => (0..6)
            .map(|i| format!("<rect x='{}' y='0' width='46' height='720' fill='{accent}' opacity='{:.2}'/>", 860 + i * 80, 0.12 + i as f32 * 0.07))
            .collect(),
        _ => format!("<polygon points='700,720 1280,0 1280,720' fill='{accent}' opacity='.35'/>"),
    };
    let words: Vec<&str> = name.split_whitespace().collect();
    let mut lines: Vec<String> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(l) if l.chars().count() + w.chars().count() < 16 => {
                l.push(' ');
                l.push_str(w);
            }
            _ => lines.push(w.to_string()),
        }
    }
    lines.truncate(3);
    if !with_name {
        lines.clear();
    }
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("<tspan x='72' dy='{}'>{}</tspan>", if i == 0 { 0 } else { 104 }, xml_escape(l)))
        .collect();
    let y = 620 - 104 * (lines.len().max(1) as i32 - 1);
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1280 720' width='1280' height='720'>\
         <defs><linearGradient id='g' x1='0' y1='0' x2='1' y2='1'><stop offset='0' stop-color='{from}'/>\
         <stop offset='1' stop-color='{to}'/></linearGradient></defs>\
         <rect width='1280' height='720' fill='url(#g)'/>{shapes}\
         {}<text y='{y}' font-family='Helvetica, Arial, sans-serif' font-size='96' font-weight='800' fill='#fff'>{text}</text></svg>",
        if with_name { format!("<rect x='72' y='{}' width='120' height='10' fill='{accent}'/>", y - 120) } else { String::new() }
    )
}

#[derive(serde::Deserialize)]
pub struct ArtworkQuery {
    #[serde(default)]
    backdrop: bool,
}

/// `GET /api/v1/titles/{id}/artwork/{variant}.svg[?backdrop=true]`: public, cacheable.
pub async fn artwork(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    crate::error::Query(q): crate::error::Query<ArtworkQuery>,
) -> ApiResult<Response> {
    check_id(&id, "title")?;
    let variant = file.strip_suffix(".svg").ok_or_else(|| ApiError::not_found("artwork"))?;
    check_id(variant, "artwork")?;
    let title = state.store.title(&id).await?.ok_or_else(|| ApiError::not_found("title"))?;
    let art = state.store.artwork(&id).await?;
    let style = art
        .iter()
        .find(|a| a.variant == variant)
        .or_else(|| art.first().filter(|_| variant == "a"))
        .and_then(|a| serde_json::from_str::<Style>(&a.style).ok())
        .ok_or_else(|| ApiError::not_found("artwork"))?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=3600")],
        render(&title.name, &style, !q.backdrop),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_names() {
        let styles = default_styles("Tom & <Jerry>");
        assert_eq!(styles.len(), 3);
        let style: Style = serde_json::from_str(&styles[0].1).unwrap_or(Style {
            from: String::new(),
            to: String::new(),
            accent: String::new(),
            layout: String::new(),
        });
        let svg = render("Tom & <Jerry>", &style, true);
        assert!(svg.contains("Tom &amp; &lt;Jerry&gt;"));
        assert!(!svg.contains("<Jerry>"));
        assert!(!render("Tom", &style, false).contains("Tom"), "backdrops carry no name");
    }
}
