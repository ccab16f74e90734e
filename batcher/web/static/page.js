// Drag and drop onto the upload form: the dropped file becomes the file input's, and the form is sent.
document.addEventListener("DOMContentLoaded", function () {
  var drop = document.getElementById("drop");
  var input = document.getElementById("file");
  if (!drop || !input) return;
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (event) {
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    document.getElementById("upload").requestSubmit();
  });
});
