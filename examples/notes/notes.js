// Notes: a small freezr app. It talks to the server only through the `freezr`
// global, so it runs unchanged on freehold and on freezr. All text reaches the
// page through textContent: note contents are data, never markup.
/* global freezr */
'use strict';

// The app's default table; a dotted name is taken as a full app table by freezr.
const TABLE = 'com.freehold.notes';

const $ = (id) => document.getElementById(id);
let editingId = null; // the _id of the note in the form, or null for a new note
let notesById = new Map();

function showStatus(text, isError = false) {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function showError(prefix, err) {
  const detail = err && err.message ? err.message : String(err);
  showStatus(prefix + ': ' + detail, true);
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function attachmentView(att) {
  const box = el('p', 'attachment');
  const url = freezr.getFileUrl(att.fileId);
  if (/^image\//.test(att.type || '')) {
    const img = el('img');
    img.src = url;
    img.alt = att.name || 'attachment';
    img.loading = 'lazy';
    box.appendChild(img);
  }
  const link = el('a', 'attachment-link', att.name || att.fileId);
  link.href = url;
  link.target = '_blank';
  link.rel = 'noopener';
  box.appendChild(link);
  return box;
}

function noteView(note) {
  const li = el('li', 'note');
  li.dataset.id = note._id;
  li.dataset.testid = 'note';
  li.appendChild(el('h3', 'title', note.title || '(untitled)'));
  if (note.body) li.appendChild(el('p', 'body', note.body));
  if (note.attachment && note.attachment.fileId) li.appendChild(attachmentView(note.attachment));
  li.appendChild(el('p', 'meta', 'Edited ' + new Date(note._date_modified).toLocaleString()));

  const actions = el('div', 'actions');
  const edit = el('button', 'edit', 'Edit');
  edit.type = 'button';
  const del = el('button', 'delete', 'Delete');
  del.type = 'button';
  actions.append(edit, del);
  li.appendChild(actions);
  return li;
}

function render(notes) {
  notesById = new Map(notes.map((n) => [n._id, n]));
  $('notes-list').replaceChildren(...notes.map(noteView));
  $('empty').hidden = notes.length > 0;
}

async function refresh() {
  // Newest first is the server's default order too; asking makes the intent plain.
  const notes = await freezr.query(TABLE, {}, { sort: { _date_modified: -1 } });
  render(Array.isArray(notes) ? notes : []);
}

// ---------------------------------------------------------------------------
// Form
// ---------------------------------------------------------------------------

function resetForm() {
  editingId = null;
  $('note-form').reset();
  $('note-form').classList.remove('editing');
  $('save-note').textContent = 'Add note';
  $('cancel-edit').hidden = true;
}

function startEdit(id) {
  const note = notesById.get(id);
  if (!note) return;
  editingId = id;
  $('note-title').value = note.title || '';
  $('note-body').value = note.body || '';
  $('attach-file').value = '';
  $('note-form').classList.add('editing');
  $('save-note').textContent = 'Save changes';
  $('cancel-edit').hidden = false;
  showStatus('');
  $('note-title').focus();
}

// Server file names are single path segments without control characters.
function safeFileName(name) {
  const cleaned = String(name || 'file').replace(/[\\/\u0000-\u001f\u007f]/g, '_').trim();
  return cleaned.slice(-120) || 'file';
}

async function attach(noteId, file, previous) {
  const uploaded = await freezr.upload(file, { targetFolder: 'attachments/' + noteId, fileName: safeFileName(file.name) });
  const attachment = { fileId: uploaded._id, name: file.name, type: file.type || '' };
  await freezr.updateFields(TABLE, noteId, { attachment });
  if (previous && previous.fileId && previous.fileId !== attachment.fileId) {
    // The old file is no longer referenced; failing to remove it is not worth an error.
    await freezr.deleteFile(previous.fileId).catch(() => undefined);
  }
}

async function save(event) {
  event.preventDefault();
  const title = $('note-title').value.trim();
  const body = $('note-body').value;
  const file = $('attach-file').files[0];
  if (!title) {
    showStatus('A note needs a title.', true);
    return;
  }
  const button = $('save-note');
  button.disabled = true;
  showStatus('Saving…');
  try {
    let id = editingId;
    const previous = id ? notesById.get(id) : null;
    if (id) {
      // A full update replaces the record, so carry the attachment over.
      const record = { title, body };
      if (previous && previous.attachment) record.attachment = previous.attachment;
      await freezr.update(TABLE, id, record);
    } else {
      id = (await freezr.create(TABLE, { title, body }))._id;
    }
    if (file) {
      showStatus('Uploading ' + file.name + '…');
      await attach(id, file, previous && previous.attachment);
    }
    resetForm();
    await refresh();
    showStatus(previous ? 'Note saved.' : 'Note added.');
  } catch (err) {
    showError('Could not save the note', err);
  } finally {
    button.disabled = false;
  }
}

async function remove(id) {
  const note = notesById.get(id);
  if (!note) return;
  try {
    await freezr.delete(TABLE, id);
    if (note.attachment && note.attachment.fileId) await freezr.deleteFile(note.attachment.fileId).catch(() => undefined);
    if (editingId === id) resetForm();
    await refresh();
    showStatus('Note deleted.');
  } catch (err) {
    showError('Could not delete the note', err);
  }
}

function onListClick(event) {
  const button = event.target.closest('button');
  const item = button && button.closest('li[data-id]');
  if (!item) return;
  if (button.classList.contains('edit')) startEdit(item.dataset.id);
  else if (button.classList.contains('delete')) void remove(item.dataset.id);
}

// freezr calls initPageScripts once the page has loaded.
freezr.initPageScripts = async function () {
  $('note-form').addEventListener('submit', save);
  $('cancel-edit').addEventListener('click', () => { resetForm(); showStatus(''); });
  $('notes-list').addEventListener('click', onListClick);
  try {
    await refresh();
    showStatus('Ready.');
  } catch (err) {
    showError('Could not load your notes', err);
  }
};
