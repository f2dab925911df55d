// The interactive full-screen view (ncurses): draws the model's frame with the same
// lines as batch mode, and turns keys into view changes.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "top/top_model.h"
#include "top/top_text.h"

namespace vmscope {

class TopScreen {
 public:
  // Takes over the terminal; an error when stdin/stdout is not one.
  static Result<std::unique_ptr<TopScreen>> open();
  ~TopScreen();  // gives the terminal back as it was
  TopScreen(const TopScreen&) = delete;
  TopScreen& operator=(const TopScreen&) = delete;

  enum class Action { kNone, kRedraw, kQuit, kDelayChanged, kPauseChanged };
  // Reads every waiting key (never blocks) and applies it to the view.
  Action handle_keys(TopView& view, const TopModel& model);
  void draw(const TopModel& model, const TopView& view);

  struct Key {
   private:
    Key() = default;
    friend class TopScreen;
  };
  explicit TopScreen(Key) {}

 private:
  enum class Mode { kTable, kDetail, kHelp, kFilterPrompt, kDelayPrompt };
  Action handle_key(int ch, TopView& view, const TopModel& model);
  void draw_table(const TopModel& model, const TopView& view);
  void draw_detail(const TopModel& model);
  void draw_help(const TopView& view);
  void draw_prompt();

  Mode mode_ = Mode::kTable;
  std::string selected_;  // VM name under the cursor: stays put when the order changes
  int scroll_ = 0;        // first table row shown
  int detail_scroll_ = 0;
  std::string prompt_;   // text typed at a prompt
  std::string message_;  // one-line feedback (bad delay, ...)
  int table_rows_ = 1;   // rows that fit, from the last draw
};

}  // namespace vmscope
